"""The design notes' base class (src/models/base.py), as the notes write it: GPU resource methods."""
from abc import ABC


class BaseModel(ABC):
    # 新增GPU资源管理方法
    def unload_from_gpu(self):
        """将模型从GPU卸载到CPU，释放GPU内存"""
        pass

    def load_to_gpu(self):
        """将模型从CPU加载到GPU"""
        pass


class BaseDiffusionModel(BaseModel):
    pass


class BaseRewardModel(BaseModel):
    pass
